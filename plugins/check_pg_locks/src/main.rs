fn main() {
    pgvigil::run::<pgvigil::checks::locks::Locks>("check_pg_locks")
}
