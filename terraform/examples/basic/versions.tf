terraform {
  required_version = ">= 1.11"

  required_providers {
    google = {
      source = "hashicorp/google"
      # The root module's floor (terraform/versions.tf).
      version = ">= 7.21, < 8"
    }
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
