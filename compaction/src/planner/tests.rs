use super::*;

#[test]
fn empty_state_picks_nothing() {
    let config = CompactionConfig::default();
    let state = LevelState {
        levels: vec![Vec::new(); 7],
        oldest_snapshot: None,
    };
    assert_eq!(pick(&state, &config), None);
    assert_eq!(write_stall(&state, &config, 0), WriteStall::None);
    assert_eq!(pending_compaction_bytes(&state, &config), 0);
    assert_eq!(pick(&LevelState::default(), &config), None);
}
