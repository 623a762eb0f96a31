build {
  sources = ["source.amazon-ebs.app"]
  provisioner "shell" {
    inline = ["sudo apt-get install -y nginx", "sudo nft flush ruleset", "sudo ip6tables -X"]
  }
}
