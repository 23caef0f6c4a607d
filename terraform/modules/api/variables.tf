variable "project_id" {
  description = "Project of the API Gateway API, config and gateway."
  type        = string
}

variable "region" {
  description = "Region of the gateway; API Gateway runs in a subset of regions (e.g. us-central1, us-east1, europe-west1, asia-northeast1)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the API's, the config's and the gateway's ids."
  type        = string
}

variable "function_urls" {
  description = "HTTPS URL of every HTTP function, by function name: fills `$${url_<function>}` in openapi.yaml.tftpl (generated from the route table by `streams gateway-config`)."
  type        = map(string)

  validation {
    condition     = alltrue([for url in values(var.function_urls) : startswith(url, "https://")])
    error_message = "function_urls must be HTTPS URLs."
  }
}

variable "labels" {
  description = "Labels added to the API, config and gateway."
  type        = map(string)
  default     = {}
}
