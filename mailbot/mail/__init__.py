"""Raw bytes to one normalised Message: parsing, charsets, containers, names, bounces."""
