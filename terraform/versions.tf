terraform {
  # Ephemeral resources and write-only attributes (the message signing key) need 1.11.
  required_version = ">= 1.11"

  required_providers {
    google = {
      source = "hashicorp/google"
      # secret_data_wo (write-only secret versions) arrived in 6.23.
      version = ">= 6.23, < 8"
    }
    # API Gateway's resources exist only in the beta provider (modules/api).
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.0, < 8"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.7, < 4"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4, < 3"
    }
  }
}
