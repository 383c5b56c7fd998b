fn main() {
    pgvigil::run::<pgvigil::checks::alive::Alive>("check_pg_alive")
}
