"""Text and files from outside nnexp: secrets redacted, control characters escaped, files checked
before reading."""
