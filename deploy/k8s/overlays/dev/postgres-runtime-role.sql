-- The services' runtime role: it logs in and gets row access from the migration Job
-- (BOS_RUNTIME_DB_ROLE); the schemas and tables belong to `bos`, the migrations role.
CREATE ROLE bos_app LOGIN PASSWORD 'bos_app';
