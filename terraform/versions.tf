terraform {
  # Ephemeral resources and write-only attributes (the message signing key) need 1.11.
  required_version = ">= 1.11"

  required_providers {
    google = {
      source = "hashicorp/google"
      # secret_data_wo (write-only secret versions) arrived in 6.23.
      version = ">= 6.23, < 8"
    }
    # google_project_service_identity (Pub/Sub's service agent) exists only in the beta provider.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.0, < 8"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.7, < 4"
    }
    # time_sleep: waits for enabled APIs and IAM propagation (one apply into an empty project).
    time = {
      source  = "hashicorp/time"
      version = ">= 0.12, < 1"
    }
  }
}
