-- Runs once, when the postgres container initialises an empty data volume
-- (docker-entrypoint-initdb.d). One role and one database per service: a
-- service owns its database, applies its own migrations there at start-up
-- (contract §1), and cannot connect to the other's. The passwords are demo
-- values, repeated in docker-compose.yml's DATABASE_URLs; see README
-- ("With Docker") to change them.
CREATE ROLE order_service LOGIN PASSWORD 'order-service-demo';
CREATE ROLE payment_service LOGIN PASSWORD 'payment-service-demo';

CREATE DATABASE orders OWNER order_service;
CREATE DATABASE payments OWNER payment_service;

-- PUBLIC may connect to (and create temporary tables in) any new database
-- by default; only the owner (and superusers) may here.
REVOKE ALL ON DATABASE orders FROM PUBLIC;
REVOKE ALL ON DATABASE payments FROM PUBLIC;
