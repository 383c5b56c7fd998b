fn main() {
    pgvigil::run::<pgvigil::checks::hit_ratio::HitRatio>("check_pg_hit_ratio")
}
