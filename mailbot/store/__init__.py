"""Storage: SQLAlchemy models, transactions, and the content-addressed blob store."""
