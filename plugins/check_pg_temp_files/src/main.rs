fn main() {
    pgvigil::run::<pgvigil::checks::temp_files::TempFiles>("check_pg_temp_files")
}
