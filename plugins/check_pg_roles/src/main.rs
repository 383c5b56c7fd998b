fn main() {
    pgvigil::run::<pgvigil::checks::roles::Roles>("check_pg_roles")
}
