"""Count the hostile cases the test suite tries, by kind, from pytest's own collection.

The summary table at the top of ``docs/RELIABILITY.md`` is generated from ``KINDS``: each kind
lists the tests that try it as ``file::test_name`` patterns (``fnmatch``; parametrized cases
count one each). ``tests/integration/test_reliability_counts.py`` checks that the table's
counts equal these, and that every test the document cites exists, so the table cannot drift
silently.

Usage::

    PYTHONPATH=src python bench/reliability_counts.py          # print the table's rows
    PYTHONPATH=src python bench/reliability_counts.py --check  # exit 1 if the doc disagrees
    PYTHONPATH=src python bench/reliability_counts.py --write  # put the counts in the doc
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "RELIABILITY.md"
TABLE_TITLE = "## Hostile cases the suite tries"

# kind -> test patterns. Keep the kind names equal to the first column of the doc's table.
KINDS: dict[str, list[str]] = {
    "corrupt and hostile images": [
        "tests/unit/data/test_hostile_input.py::test_bad_files_are_caught_by_the_header_check",
        "tests/unit/data/test_hostile_input.py::test_png_named_jpg_is_read",
        "tests/unit/data/test_hostile_input.py::test_unusual_modes_become_rgb",
        "tests/unit/data/test_hostile_input.py::test_evaluation_stops_before_work_and_names_the_file",
        "tests/unit/data/test_hostile_input.py::test_training_skips_and_counts_a_truncated_image",
        "tests/unit/data/test_hostile_input.py::test_unreadable_file_is_named",
        "tests/unit/data/test_hostile_input.py::test_a_permission_error_is_named_even_as_root",
        "tests/unit/data/test_datasets.py::test_corrupt_training_image_is_skipped_and_counted",
        "tests/unit/inputs/test_fast_pipeline.py::test_bad_files_are_named_before_decoding",
        "tests/unit/inputs/test_fast_pipeline.py::test_fast_training_set_skips_and_counts_a_truncated_image",
        "tests/unit/inputs/test_fast_pipeline.py::test_unusual_modes_become_rgb_uint8",
        "tests/unit/inputs/test_device_decode.py::test_a_failed_batch_call_is_retried_image_by_image",
        "tests/unit/inputs/test_device_decode.py::test_an_undecodable_jpeg_is_named",
        "tests/unit/inputs/test_device_decode.py::test_the_reader_checks_files_first",
    ],
    "bad file names and dataset folders": [
        "tests/unit/data/test_geotag.py::test_bad_names_are_named_in_the_error",
        "tests/unit/training/test_bad_input.py::test_name_without_utm_fields",
        "tests/unit/training/test_bad_input.py::test_test_set_without_database",
        "tests/unit/training/test_bad_input.py::test_missing_train_folder",
        "tests/unit/training/test_bad_input.py::test_folder_without_images",
        "tests/unit/data/test_hostile_input.py::test_empty_queries_folder",
        "tests/unit/data/test_hostile_input.py::test_symlink_loop_does_not_hang",
        "tests/unit/data/test_datasets.py::test_name_without_utm_fields_is_named",
        "tests/unit/data/test_datasets.py::test_empty_or_missing_folders",
        "tests/unit/datatools/test_data_tools.py::test_check_finds_each_problem",
        "tests/unit/datatools/test_data_tools.py::test_check_duplicate_across_database_and_queries",
        "tests/unit/datatools/test_data_tools.py::test_check_query_without_positive",
        "tests/integration/test_end_to_end.py::test_train_writes_best_last_logs_config_and_results",
        "tests/unit/datatools/test_convert.py::test_missing_raw_files_name_what_was_expected",
        "tests/unit/datatools/test_convert.py::test_a_dbstruct_without_path_fields_is_named",
    ],
    "bad checkpoints and weight files": [
        "tests/unit/training/test_bad_input.py::test_checkpoint_that_is_not_ours",
        "tests/unit/training/test_bad_input.py::test_truncated_checkpoint",
        "tests/unit/training/test_bad_input.py::test_missing_checkpoint",
        "tests/unit/training/test_bad_input.py::test_pickle_payload_is_refused_and_does_nothing",
        "tests/unit/training/test_bad_input.py::test_checkpoint_of_another_version_names_what_differs",
        "tests/unit/training/test_bad_input.py::test_checkpoint_with_settings_this_version_does_not_know",
        "tests/integration/test_reliability.py::test_resume_auto_picks_the_newest_valid_checkpoint",
        "tests/integration/test_reliability_training.py::test_an_unreadable_pretrained_file_says_what_it_is",
        "tests/integration/test_reliability_training.py::test_a_text_file_as_a_checkpoint_is_not_a_checkpoint",
        "tests/integration/test_end_to_end.py::test_explicit_flag_contradicting_checkpoint_is_an_error",
        "tests/unit/models/test_published_models.py::test_read_state_dict_refuses_pickled_objects_and_unknown_formats",
        "tests/unit/models/test_published_models.py::test_wrong_layout_names_unknown_missing_and_reshaped_keys",
        "tests/integration/test_published_models_cli.py::test_vpr_test_reports_a_file_that_does_not_fit",
    ],
    "bad options and values": [
        "tests/unit/training/test_bad_input.py::test_unknown_names_list_the_valid_ones",
        "tests/unit/training/test_bad_input.py::test_img_per_place_above_min",
        "tests/integration/test_reliability_training.py::test_a_bad_option_lists_the_valid_keys_before_work",
        "tests/integration/test_reliability_training.py::test_invalid_values_are_refused_before_the_run_folder_is_made",
        "tests/integration/test_reliability_training.py::test_a_start_that_fails_after_the_folder_was_made_removes_it",
        "tests/integration/test_reliability_training.py::test_a_folder_holding_other_files_is_kept_after_a_failed_start",
        "tests/integration/test_end_to_end.py::test_existing_experiment_is_never_overwritten",
        "tests/unit/models/test_published_models.py::test_unknown_model_names_the_valid_ones",
    ],
    "disk faults (read-only, full)": [
        "tests/integration/test_reliability_training.py::test_a_full_disk_keeps_the_previous_checkpoint_and_says_so",
        "tests/integration/test_reliability_training.py::test_a_read_only_or_full_output_folder_is_one_line",
        "tests/integration/test_reliability_training.py::test_a_disk_fault_after_the_checks_is_one_line_naming_the_file",
        "tests/integration/test_locate_map.py::test_an_unwritable_map_target_is_one_line_before_the_search",
    ],
    "kills, interrupts and NaN losses": [
        "tests/integration/test_reliability.py::test_sigkill_mid_epoch_then_resume_equals_uninterrupted",
        "tests/integration/test_reliability.py::test_a_kill_during_a_save_leaves_a_whole_file",
        "tests/integration/test_reliability.py::test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint",
        "tests/integration/test_reliability_training.py::test_a_kill_at_any_instant_keeps_a_whole_checkpoint_across_file_systems",
        "tests/integration/test_reliability_training.py::test_ctrl_c_exits_130_with_the_resume_command",
    ],
    "concurrent writers and crashed index writes": [
        "tests/integration/test_reliability_index.py::test_two_concurrent_adds_keep_both_sets",
        "tests/integration/test_reliability_index.py::test_a_writer_waits_then_refuses_naming_the_holder",
        "tests/integration/test_reliability_index.py::test_lock_is_exclusive_names_its_holder_and_dies_with_it",
        "tests/integration/test_reliability_index.py::test_add_rereads_an_index_grown_by_another_process",
        "tests/integration/test_reliability_index.py::test_the_index_folder_is_never_renamed_and_current_is_replaced_atomically",
        "tests/integration/test_reliability_index.py::test_a_reader_whose_version_vanishes_reads_current_again",
        "tests/integration/test_reliability_index.py::test_leftovers_of_a_crash_are_cleaned_on_next_use",
        "tests/integration/test_reliability_index.py::test_a_writer_cleans_leftovers_that_a_busy_reader_left_alone",
        "tests/integration/test_reliability_index.py::test_a_crash_between_the_legacy_renames_restores_the_old_index",
        "tests/integration/test_reliability_index.py::test_a_legacy_index_is_migrated_on_first_use_then_grows",
        "tests/unit/locate/test_location_store.py::test_rows_of_an_interrupted_add_are_invisible_then_removed",
        "tests/unit/locate/test_location_store.py::test_concurrent_adds_are_serialised_by_the_lock",
        "tests/unit/locate/test_location_store.py::test_migration_of_format_1_keeps_every_row",
        "tests/unit/locate/test_location_store.py::test_migration_of_the_legacy_layout_and_of_an_approximate_index",
        "tests/unit/locate/test_location_store.py::test_a_busy_format_1_index_is_read_as_it_is",
        "tests/integration/test_reliability_index.py::test_build_over_a_folder_that_is_not_an_index_is_refused",
        "tests/integration/test_reliability_index.py::test_a_failed_build_leaves_no_folder",
        "tests/integration/test_reliability.py::test_ddp_two_processes_train_and_test_like_one",
    ],
    "hostile HTTP clients (uploads, slow clients, batches)": [
        "tests/integration/test_reliability_serve.py::test_no_more_than_max_decodes_at_once",
        "tests/integration/test_reliability_serve.py::test_large_images_are_decoded_small",
        "tests/integration/test_reliability_serve.py::test_sixteen_bit_rgba_png_is_reduced_to_rgb",
        "tests/integration/test_reliability_serve.py::test_over_the_pixel_budget_is_refused_undecoded",
        "tests/integration/test_reliability_serve.py::test_ordinary_uploads_give_exactly_the_results_of_vpr_locate",
        "tests/integration/test_reliability_serve.py::test_a_body_sent_byte_by_byte_gets_408",
        "tests/integration/test_reliability_serve.py::test_headers_sent_byte_by_byte_get_408",
        "tests/integration/test_reliability_serve.py::test_cli_has_the_limit_options",
        "tests/integration/test_serve.py::test_bad_uploads_get_clear_client_errors",
        "tests/integration/test_serve.py::test_oversized_uploads_get_413",
        "tests/integration/test_serve.py::test_paths_in_any_parameter_are_refused_and_never_read",
        "tests/integration/test_serve_batch.py::test_a_batch_answers_each_photo_as_locate_would_and_errors_stay_in_their_row",
        "tests/integration/test_serve_batch.py::test_batch_limits_count_size_and_fields",
        "tests/integration/test_serve_batch.py::test_cli_batch_options_reach_the_app",
    ],
    "hostile archives and downloads": [
        "tests/unit/datatools/test_fetch.py::test_hostile_archive_members_are_refused_before_anything_is_written",
        "tests/unit/datatools/test_fetch.py::test_a_chunked_body_that_breaks_off_is_never_taken_for_a_whole_file",
        "tests/unit/datatools/test_fetch.py::test_a_corrupt_archive_is_reported_and_removed",
        "tests/unit/datatools/test_fetch.py::test_size_and_sha256_mismatches_remove_the_partial_file",
        "tests/unit/datatools/test_download.py::test_not_a_zip_and_unsafe_paths_are_refused",
    ],
    "hostile CSV/EXIF import": [
        "tests/integration/test_reliability_import.py::test_csv_paths_outside_the_source_folder_are_refused",
        "tests/integration/test_reliability_import.py::test_a_symlink_out_of_the_source_folder_is_refused",
        "tests/integration/test_reliability_import.py::test_hostile_place_ids_never_reach_a_file_name",
        "tests/integration/test_reliability_import.py::test_control_characters_in_a_source_name_become_underscores",
        "tests/integration/test_reliability_import.py::test_a_nul_in_a_csv_path_is_listed_not_a_crash",
        "tests/integration/test_reliability_import.py::test_files_that_are_not_images_are_reported_not_copied",
    ],
    "network absent": [
        "tests/integration/test_reliability_training.py::test_imagenet_weights_out_of_reach_is_one_message_through_main_py",
        "tests/unit/datatools/test_fetch.py::test_without_network_one_line_names_the_url_and_the_manual_steps",
        "tests/unit/datatools/test_download.py::test_unreachable_network_is_said_clearly",
        "tests/unit/models/test_published_models.py::test_hub_weights_missing_offline_is_one_clear_error",
        "tests/unit/models/test_published_models.py::test_hub_download_failure_is_one_clear_error",
    ],
}


def collect(root: Path = ROOT) -> list[str]:
    """Node ids of every test under ``root/tests``, from ``pytest --collect-only -q``."""
    # The package under ``root/src`` first, so the suite of this checkout is what is counted.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests"],
        cwd=root, env=env, capture_output=True, text=True, check=False)
    ids = [line.strip() for line in done.stdout.splitlines() if "::" in line]
    if done.returncode != 0 or not ids:
        raise RuntimeError(f"pytest --collect-only failed ({done.returncode}):\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return ids


def count(node_ids: list[str]) -> dict[str, int]:
    """Collected cases per kind; a parametrized test counts once per parameter set."""
    bases = [node.split("[", 1)[0] for node in node_ids]
    return {kind: sum(any(fnmatch.fnmatchcase(base, p) for p in patterns) for base in bases)
            for kind, patterns in KINDS.items()}


def unmatched(node_ids: list[str]) -> list[str]:
    """Patterns that match no collected test (a test renamed or removed)."""
    bases = {node.split("[", 1)[0] for node in node_ids}
    return [p for patterns in KINDS.values() for p in patterns
            if not any(fnmatch.fnmatchcase(base, p) for base in bases)]


def table_counts(markdown: str) -> dict[str, int]:
    """The kind -> count pairs of the summary table under ``TABLE_TITLE``."""
    section = markdown.split(TABLE_TITLE, 1)[1].split("\n## ", 1)[0]
    counts = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[1].isdigit():
            counts[cells[0]] = int(cells[1])
    return counts


def cited_tests(markdown: str) -> set[str]:
    """Every test function name the document cites in backquotes."""
    return set(re.findall(r"`(?:[\w/.]+::)?(test_\w+)`", markdown))


def cited_node_ids(markdown: str) -> set[str]:
    """The ``tests/file.py::test_name`` citations of the document (file and test)."""
    return set(re.findall(r"`(tests/[\w/.]+\.py::test_\w+)`", markdown))


def with_counts(markdown: str, counts: dict[str, int]) -> str:
    """The document with each kind's count in the summary table replaced by ``counts``."""
    head, rest = markdown.split(TABLE_TITLE, 1)
    section, sep, tail = rest.partition("\n## ")
    for kind, n in counts.items():
        section = re.sub(rf"^\| {re.escape(kind)} \| \d+ \|", f"| {kind} | {n} |", section,
                         flags=re.MULTILINE)
    return head + TABLE_TITLE + section + sep + tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with docs/RELIABILITY.md; exit 1 on any difference")
    parser.add_argument("--write", action="store_true",
                        help="write the counts into the table of docs/RELIABILITY.md (a new kind "
                             "needs its row added by hand first)")
    args = parser.parse_args()
    ids = collect()
    counts = count(ids)
    missing = unmatched(ids)
    for pattern in missing:
        print(f"matches no test: {pattern}", file=sys.stderr)
    if args.write:
        DOC.write_text(with_counts(DOC.read_text(), counts))
    if not args.check:
        for kind, n in counts.items():
            print(f"| {kind} | {n} |")
        return 1 if missing else 0
    page = DOC.read_text()
    in_doc = table_counts(page)
    wrong = {kind: (in_doc.get(kind), n) for kind, n in counts.items() if in_doc.get(kind) != n}
    wrong.update({kind: (n, None) for kind, n in in_doc.items() if kind not in counts})
    for kind, (doc_n, n) in wrong.items():
        print(f"{kind}: the doc says {doc_n}, the suite has {n}", file=sys.stderr)
    bases = {node.split("[", 1)[0] for node in ids}
    names = {base.split("::")[-1] for base in bases}
    gone = sorted((cited_tests(page) - names) | (cited_node_ids(page) - bases))
    for name in gone:
        print(f"cited but not in the suite: {name}", file=sys.stderr)
    return 1 if wrong or missing or gone else 0


if __name__ == "__main__":
    sys.exit(main())
