fn main() {
    pgvigil::run::<pgvigil::checks::vacuum::Vacuum>("check_pg_vacuum")
}
