terraform {
  required_version = ">= 1.5"

  required_providers {
    # API Gateway's resources exist only in the beta provider.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.0, < 8"
    }
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8"
    }
  }
}
