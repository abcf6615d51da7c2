// Request ids, log lines and metrics: the pieces an operator relies on to trace a request.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <set>
#include <sstream>

#include "beast_server/metrics.hpp"
#include "beast_server/request_id.hpp"
#include "beast_server/request_log.hpp"

namespace pysandbox::beast_server {
namespace {

TEST(RequestId, ValidIdsAreEchoed) {
  EXPECT_EQ(choose_request_id("abc-DEF_1.2"), "abc-DEF_1.2");
  EXPECT_EQ(choose_request_id(std::string(128, 'a')), std::string(128, 'a'));
}

TEST(RequestId, InvalidIdsAreReplaced) {
  for (const std::string& bad :
       {std::string(), std::string(129, 'a'), std::string("a b"), std::string("a\r\nSet-Cookie: x"),
        std::string("id/1"), std::string("\"quoted\"")}) {
    const std::string chosen = choose_request_id(bad);
    EXPECT_NE(chosen, bad);
    EXPECT_EQ(chosen.size(), 16u);
    EXPECT_TRUE(is_valid_request_id(chosen));
  }
}

TEST(RequestId, GeneratedIdsAreHexAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = generate_request_id();
    ASSERT_EQ(id.size(), 16u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(RequestLog, OneJsonLinePerRequestWithEveryField) {
  std::ostringstream out;
  RequestLog log(out);
  RequestRecord record;
  record.request_id = "rid";
  record.method = "POST";
  record.target = "/execute?x=\"1\"\n";
  record.remote = "127.0.0.1:5555";
  record.status = 500;
  record.error_type = "internal";
  record.isolation = "namespaces";
  record.queue_ms = 1.5;
  record.run_ms = 2.5;
  record.total_ms = 7;
  record.detail = "clone3: EPERM";
  log.request(record);
  const std::string text = out.str();
  ASSERT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1) << "the target's newline must be escaped";
  const auto line = boost::json::parse(text).as_object();
  EXPECT_EQ(line.at("event").as_string(), "request");
  EXPECT_EQ(line.at("request_id").as_string(), "rid");
  EXPECT_EQ(line.at("method").as_string(), "POST");
  EXPECT_EQ(line.at("target").as_string(), "/execute?x=\"1\"\n");
  EXPECT_EQ(line.at("status").as_int64(), 500);
  EXPECT_EQ(line.at("error_type").as_string(), "internal");
  EXPECT_EQ(line.at("isolation").as_string(), "namespaces");
  EXPECT_DOUBLE_EQ(line.at("queue_ms").as_double(), 1.5);
  EXPECT_TRUE(line.at("spawn_ms").is_null());
  EXPECT_DOUBLE_EQ(line.at("run_ms").as_double(), 2.5);
  EXPECT_TRUE(line.at("teardown_ms").is_null());
  EXPECT_DOUBLE_EQ(line.at("total_ms").to_number<double>(), 7.0);
  EXPECT_EQ(line.at("remote").as_string(), "127.0.0.1:5555");
  EXPECT_EQ(line.at("detail").as_string(), "clone3: EPERM");
  EXPECT_EQ(line.at("ts").as_string().size(), 24u);  // 2024-05-01T12:00:00.123Z
}

TEST(RequestLog, UndeliveredRequestsSayWhy) {
  RequestRecord record;
  record.request_id = "rid";
  record.route = "/execute";
  record.abandoned = "running";
  record.error_type = "cancelled";
  auto line = request_line(record, std::chrono::system_clock::now());
  EXPECT_TRUE(line.at("status").is_null()) << "nothing was sent";
  EXPECT_FALSE(line.at("delivered").as_bool());
  EXPECT_EQ(line.at("abandoned").as_string(), "running");
  EXPECT_FALSE(line.contains("write_timeout"));

  RequestRecord cut;
  cut.status = 200;
  cut.cut = true;
  line = request_line(cut, std::chrono::system_clock::now());
  EXPECT_EQ(line.at("status").as_int64(), 200);
  EXPECT_FALSE(line.at("delivered").as_bool());
  EXPECT_TRUE(line.at("write_timeout").as_bool());

  RequestRecord delivered;
  delivered.status = 200;
  EXPECT_TRUE(request_line(delivered, std::chrono::system_clock::now()).at("delivered").as_bool());
}

TEST(Metrics, UndeliveredRequestsAreNotCountedAsAnswered) {
  Metrics metrics;
  RequestRecord abandoned;
  abandoned.route = "/execute";
  abandoned.status = 200;
  abandoned.error_type = "ok";
  abandoned.abandoned = "writing";
  metrics.record(abandoned);
  RequestRecord cut;
  cut.route = "/execute";
  cut.status = 200;
  cut.error_type = "ok";
  cut.cut = true;
  metrics.record(cut);
  metrics.connection_closed(CloseReason::kWriteTimeout);
  EXPECT_EQ(metrics.requests("/execute", 200, "ok"), 0u);
  EXPECT_EQ(metrics.abandoned("/execute", "writing"), 1u);
  EXPECT_EQ(metrics.cut("/execute"), 1u);
  const std::string text = metrics.render(Gauges{});
  for (const char* needle :
       {"pysandbox_requests_abandoned_total{route=\"/execute\",phase=\"writing\"} 1\n",
        "pysandbox_responses_cut_total{route=\"/execute\"} 1\n",
        "pysandbox_connections_closed_total{reason=\"write_timeout\"} 1\n",
        "pysandbox_connections_closed_total{reason=\"evicted\"} 0\n"}) {
    EXPECT_NE(text.find(needle), std::string::npos) << needle << "\n" << text;
  }
}

TEST(RequestLog, TimestampFormat) {
  using namespace std::chrono;
  const system_clock::time_point when{milliseconds(1700000000123)};
  EXPECT_EQ(format_timestamp(when), "2023-11-14T22:13:20.123Z");
}

TEST(Metrics, CountersAndHistograms) {
  Metrics metrics;
  RequestRecord ok;
  ok.route = "/execute";
  ok.status = 200;
  ok.error_type = "ok";
  ok.queue_ms = 0.5;
  ok.spawn_ms = 3;
  ok.run_ms = 40;
  ok.teardown_ms = 1;
  ok.total_ms = 45;
  metrics.record(ok);
  metrics.record(ok);
  RequestRecord health;
  health.route = "/healthz";
  health.status = 200;
  health.total_ms = 0.1;
  metrics.record(health);
  EXPECT_EQ(metrics.requests("/execute", 200, "ok"), 2u);
  EXPECT_EQ(metrics.requests("/healthz", 200, ""), 1u);

  const std::string text = metrics.render(Gauges{.in_flight = 2,
                                                 .queued = 3,
                                                 .max_concurrency = 4,
                                                 .queue_size = 64,
                                                 .connections = 5,
                                                 .draining = false,
                                                 .isolation = "full",
                                                 .pool = {.ready = 2, .busy = 1, .restarts = 7}});
  for (const char* needle :
       {"pysandbox_requests_total{route=\"/execute\",status=\"200\",error_type=\"ok\"} 2\n",
        "pysandbox_requests_total{route=\"/healthz\",status=\"200\",error_type=\"\"} 1\n",
        "pysandbox_phase_duration_seconds_bucket{phase=\"queue\",le=\"0.001\"} 2\n",
        "pysandbox_phase_duration_seconds_bucket{phase=\"run\",le=\"0.025\"} 0\n",
        "pysandbox_phase_duration_seconds_bucket{phase=\"run\",le=\"0.05\"} 2\n",
        "pysandbox_phase_duration_seconds_bucket{phase=\"total\",le=\"+Inf\"} 2\n",
        "pysandbox_phase_duration_seconds_count{phase=\"spawn\"} 2\n",
        "pysandbox_phase_duration_seconds_sum{phase=\"run\"} 0.08\n", "pysandbox_in_flight 2\n",
        "pysandbox_queued 3\n", "pysandbox_connections 5\n", "pysandbox_draining 0\n",
        "pysandbox_isolation_info{mode=\"full\"} 1\n",
        "pysandbox_pool_zygotes{state=\"ready\"} 2\n", "pysandbox_pool_zygotes{state=\"busy\"} 1\n",
        "pysandbox_pool_restarts_total 7\n",
        "# TYPE pysandbox_phase_duration_seconds histogram\n"}) {
    EXPECT_NE(text.find(needle), std::string::npos) << needle << "\n" << text;
  }
}

}  // namespace
}  // namespace pysandbox::beast_server
