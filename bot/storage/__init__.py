"""Where conversations live (memory, SQLite, PostgreSQL) and what is masked before they are stored."""
