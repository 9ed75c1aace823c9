"""Files on any store (local, gs://, s3://) through one API, with retries for transient store errors."""
