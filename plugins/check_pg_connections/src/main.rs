fn main() {
    pgvigil::run::<pgvigil::checks::connections::Connections>("check_pg_connections")
}
