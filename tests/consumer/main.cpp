// Reads back a file through the best backend here, using only the installed
// pageio headers and library. Usage: app <directory for a scratch file>
#include <pageio/engine/aligned_buffer.hpp>
#include <pageio/engine/backend.hpp>
#include <pageio/engine/file.hpp>
#include <pageio/engine/request.hpp>
#include <pageio/pagecache/buffer_pool.hpp>
#include <pageio/version.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <directory>\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path path = std::filesystem::path(argv[1]) / "consumer.dat";
    std::string content(8192, '\0');
    for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + i % 26);
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(content.data(), static_cast<std::streamsize>(content.size()));
    }

    pageio::open_options opts;
    opts.writable = false;
    opts.direct = pageio::supports_direct_io(argv[1]);
    pageio::backend_options bopts;
    bopts.allow_buffered = !opts.direct;
    pageio::file f = pageio::file::open(path, opts);
    auto backend = pageio::make_backend("default", bopts);

    pageio::aligned_buffer buf(content.size());
    pageio::io_request r;
    r.prep_read(f.fd(), buf.data(), buf.size(), 0);
    backend->submit(r);
    backend->drain();
    std::string via_pool;
    const std::filesystem::path pool_path = std::filesystem::path(argv[1]) / "consumer-pool.dat";
    const std::string page_text = content.substr(4096, pageio::pagecache::usable_size);
    if (opts.direct) {
      // A page written through the installed buffer pool, and read back by another.
      pageio::pagecache::options po;
      po.frames = 8;
      {
        pageio::pagecache::buffer_pool pool(po);
        const auto id = pool.add_file(pool_path);
        auto page = pool.fetch({id, 1});
        std::memcpy(page.data(), page_text.data(), page_text.size());
        page.mark_dirty(0);
        page.reset();
        pool.flush_all();
      }
      pageio::pagecache::buffer_pool pool(po);
      const auto id = pool.add_file(pool_path, false);
      const auto page = pool.fetch({id, 1});
      via_pool.assign(reinterpret_cast<const char*>(page.data()), pageio::pagecache::usable_size);
    }
    std::filesystem::remove(path);
    std::filesystem::remove(pool_path);
    std::filesystem::remove(std::filesystem::path(pool_path.string() + ".dwb"));
    if (!via_pool.empty() && via_pool != page_text) {
      std::fprintf(stderr, "consumer: page 1 through the buffer pool differs from the file\n");
      return 1;
    }
    if (r.failed()) {
      std::fprintf(stderr, "consumer: %s\n", pageio::describe_failure(r).c_str());
      return 1;
    }
    if (static_cast<std::size_t>(r.result) != content.size() ||
        std::string(buf.chars(), buf.size()) != content) {
      std::fprintf(stderr, "consumer: read %lld bytes that differ from what was written\n",
                   static_cast<long long>(r.result));
      return 1;
    }
    std::printf("consumer: pageio %s\n", pageio::version_string);
    std::printf("consumer: read %lld bytes through the %s backend%s\n", static_cast<long long>(r.result),
                backend->name().c_str(), opts.direct ? " with O_DIRECT" : "");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
