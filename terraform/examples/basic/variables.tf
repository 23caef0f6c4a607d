variable "project_id" {
  description = "The (empty) project to deploy Streams into."
  type        = string
}

variable "region" {
  description = "Region of the functions."
  type        = string
  default     = "us-central1"
}

variable "domains" {
  description = "Your own host names for Streams, e.g. [\"data.example.com\"]."
  type        = list(string)
}
