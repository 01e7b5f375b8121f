// RocksDB's side of benches/bulk_load.rs (issue 21): the same sorted
// pairs (16-byte keys: 8 zero bytes then the index big-endian; 100-byte
// values) written with SstFileWriter, 500,000 pairs a file, then
// IngestExternalFile with move_files, no compression (as ours).
// Prints "ingest OPS ops/s (SECONDS s)". Built and run by
// benches/bulk_load_vs_rocksdb.sh; needs Debian's librocksdb-dev.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>

static std::string key(uint64_t i) {
  std::string k(16, '\0');
  for (int b = 0; b < 8; b++) k[15 - b] = static_cast<char>((i >> (8 * b)) & 0xff);
  return k;
}

static void check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) {
    fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    exit(1);
  }
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s DIR NUM\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  uint64_t num = strtoull(argv[2], nullptr, 10);
  const uint64_t per_file = 500000;
  rocksdb::Options options;
  options.create_if_missing = true;
  options.compression = rocksdb::kNoCompression;
  rocksdb::DB* db = nullptr;
  check(rocksdb::DB::Open(options, dir + "/db", &db), "open");
  std::string value(100, '\x07');
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> files;
  for (uint64_t i = 0; i < num; i += per_file) {
    std::string path = dir + "/load-" + std::to_string(files.size()) + ".sst";
    rocksdb::SstFileWriter w(rocksdb::EnvOptions(), options);
    check(w.Open(path), "writer open");
    for (uint64_t j = i; j < i + per_file && j < num; j++) check(w.Put(key(j), value), "put");
    check(w.Finish(), "finish");
    files.push_back(path);
  }
  rocksdb::IngestExternalFileOptions io;
  io.move_files = true;
  check(db->IngestExternalFile(files, io), "ingest");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string got;
  check(db->Get(rocksdb::ReadOptions(), key(num - 1), &got), "get");
  if (got != value) {
    fprintf(stderr, "wrong value read back\n");
    return 1;
  }
  printf("ingest %.0f ops/s (%.2f s)\n", num / s, s);
  delete db;
  return 0;
}
