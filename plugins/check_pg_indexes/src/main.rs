fn main() {
    pgvigil::run::<pgvigil::checks::indexes::Indexes>("check_pg_indexes")
}
