"""Layer 11: CI/CD pipelines. GitHub Actions workflows, GitLab CI files and Dockerfiles.

``collect`` reads the files (masked text, keyed by path), ``facts`` parses them into jobs, steps, commands and
the security gates they run (with whether each gate can fail the pipeline), and ``outsidein.checks.pipelines``
judges them. ``engines`` wraps zizmor and hadolint when they are installed (optional).
"""
