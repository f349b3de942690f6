pub fn run(_args: &super::args::SyntheticArgs) -> anyhow::Result<super::Exit> {
    Ok(super::Exit::Success)
}
