terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.6: google_bigquery_dataset_iam_member keeps the dataset's authorised-dataset entries,
      # which the warehouse syncs add at run time.
      version = ">= 6.6, < 8"
    }
  }
}
