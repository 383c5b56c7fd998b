fn main() {
    pgvigil::run::<pgvigil::checks::commit_ratio::CommitRatio>("check_pg_commit_ratio")
}
