"""Edges of redaction that the mutation run (`make mutation`) found untested."""
