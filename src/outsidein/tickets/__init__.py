"""Tickets: the deliverable. Open findings grouped per (check, environment), as files or in a tracker."""

from outsidein.tickets.build import Ticket, build_tickets, report_tickets, ticket_key
from outsidein.tickets.formats import render_csv, render_json, render_markdown

__all__ = ["Ticket", "build_tickets", "render_csv", "render_json", "render_markdown", "report_tickets",
           "ticket_key"]
