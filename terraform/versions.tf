terraform {
  # Ephemeral resources and write-only attributes (the message signing key) need 1.11.
  required_version = ">= 1.11"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 7.21: Direct VPC egress on Cloud Functions (service_config.direct_vpc_network_interface),
      # which the dedup store's functions use to reach Memorystore (dedup.tf). Earlier floors:
      # secret_data_wo (6.23), google_memorystore_instance.desired_auto_created_endpoints (6.37).
      version = ">= 7.21, < 8"
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
