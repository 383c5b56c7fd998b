fn main() {
    pgvigil::run::<pgvigil::checks::checkpoints::Checkpoints>("check_pg_checkpoints")
}
