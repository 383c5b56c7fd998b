fn main() {
    pgvigil::run::<pgvigil::checks::health::Health>("check_pg_health")
}
