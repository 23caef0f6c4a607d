variable "project_id" {
  description = "The (empty) project to deploy Streams into."
  type        = string
}

variable "region" {
  description = "Region of the functions and the gateway (one API Gateway runs in, e.g. us-central1)."
  type        = string
  default     = "us-central1"
}
