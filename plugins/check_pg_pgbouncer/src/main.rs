fn main() {
    pgvigil::run::<pgvigil::checks::pgbouncer::Pgbouncer>("check_pg_pgbouncer")
}
