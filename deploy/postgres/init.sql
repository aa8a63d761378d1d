-- Runs once, when the postgres container initialises an empty data volume
-- (docker-entrypoint-initdb.d). The services apply their own migrations at
-- start-up but expect their database to exist (contract §1).
CREATE DATABASE orders;
CREATE DATABASE payments;
