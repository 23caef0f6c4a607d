terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 7.21: service_config.direct_vpc_network_interface and direct_vpc_egress (var.direct_vpc).
      version = ">= 7.21, < 8"
    }
  }
}
