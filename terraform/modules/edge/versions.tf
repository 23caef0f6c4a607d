terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
      # path_matcher.route_rules.custom_error_response_policy (Cloud Armor's 429 with Retry-After).
      version = ">= 6.23, < 8"
    }
  }
}
