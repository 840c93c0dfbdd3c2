"""Helpers shared by the template's tests: rendering, env files, PostgreSQL, hosts."""
