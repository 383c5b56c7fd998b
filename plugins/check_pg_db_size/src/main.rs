fn main() {
    pgvigil::run::<pgvigil::checks::db_size::DbSize>("check_pg_db_size")
}
