fn main() {
    pgvigil::run::<pgvigil::checks::replication_lag::ReplicationLag>("check_pg_replication_lag")
}
