fn main() {
    pgvigil::run::<pgvigil::checks::query::Query>("check_pg_query")
}
