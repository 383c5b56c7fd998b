fn main() {
    pgvigil::run::<pgvigil::checks::deadlocks::Deadlocks>("check_pg_deadlocks")
}
