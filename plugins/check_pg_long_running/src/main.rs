fn main() {
    pgvigil::run::<pgvigil::checks::long_running::LongRunning>("check_pg_long_running")
}
