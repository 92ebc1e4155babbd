"""Call records: PostgreSQL through asyncpg, with a local journal so none is lost."""
