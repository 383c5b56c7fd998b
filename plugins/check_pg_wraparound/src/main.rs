fn main() {
    pgvigil::run::<pgvigil::checks::wraparound::Wraparound>("check_pg_wraparound")
}
