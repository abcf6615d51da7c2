// ZygotePool without processes: which flavour a script is routed to, and what a pool that has not
// started says about itself. (Zygotes themselves are exercised end to end,
// tests/e2e/pool_test.cpp.)
#include "executor/zygote_pool.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/serialize.hpp>

namespace pysandbox::executor {
namespace {

PoolOptions options_with(std::vector<std::string> preload, unsigned per_flavour = 1) {
  PoolOptions o;
  o.python_path = "/nonexistent/python3";  // never launched: start() is not called
  o.preload = std::move(preload);
  o.per_flavour = per_flavour;
  return o;
}

class ZygotePoolRouting : public ::testing::Test {
 protected:
  boost::asio::io_context io_;
  UidPool uids_{3000000, 8};
  ZygotePool pool_{io_.get_executor(), options_with({"numpy", "pandas"}), uids_};
};

TEST_F(ZygotePoolRouting, ScriptsNamingAPreloadGoToThePreloadedFlavour) {
  EXPECT_EQ(pool_.flavour_for("import pandas as pd\ndef main():\n    return 1\n"), 1u);
  EXPECT_EQ(pool_.flavour_for("import numpy\n"), 1u);
  EXPECT_EQ(pool_.flavour_for("from numpy.linalg import norm\n"), 1u);
  EXPECT_EQ(pool_.flavour_for("import os, pandas\n"), 1u);
  EXPECT_EQ(pool_.flavour_for("pandas"), 1u) << "the whole script is the name";
  EXPECT_EQ(pool_.flavour_for("def main():\n    import pandas\n    return 1"), 1u);
  EXPECT_EQ(pool_.flavour_for("x=1;import numpy.random as r"), 1u);
}

TEST_F(ZygotePoolRouting, OtherScriptsGoToTheMinimalFlavour) {
  EXPECT_EQ(pool_.flavour_for("def main():\n    return 1\n"), 0u);
  EXPECT_EQ(pool_.flavour_for("import pandasx\n"), 0u);
  EXPECT_EQ(pool_.flavour_for("mypandas = 1\n"), 0u);
  EXPECT_EQ(pool_.flavour_for("import numpy_financial\n"), 0u);
  EXPECT_EQ(pool_.flavour_for("_numpy = 2\nnumpy2 = 3\n"), 0u);
  EXPECT_EQ(pool_.flavour_for("import json\n"), 0u);
  EXPECT_EQ(pool_.flavour_for(""), 0u);
}

TEST(ZygotePool, WithoutPreloadsEveryScriptGoesToTheMinimalFlavour) {
  boost::asio::io_context io;
  UidPool uids(3000000, 8);
  ZygotePool pool(io.get_executor(), options_with({}), uids);
  for (const char* script : {"import pandas as pd\n", "from numpy.linalg import norm\n",
                             "import pandasx\n", "def main():\n    return 1\n"}) {
    EXPECT_EQ(pool.flavour_for(script), 0u) << script;
  }
  const auto state = pool.describe();
  EXPECT_EQ(boost::json::serialize(state.at("flavours")), R"([{"name":"minimal","preload":[]}])");
  EXPECT_EQ(state.at("zygotes").as_array().size(), 1u);
}

TEST(ZygotePool, DottedPreloadsRouteByTheirTopLevelPackage) {
  boost::asio::io_context io;
  UidPool uids(3000000, 8);
  ZygotePool pool(io.get_executor(), options_with({"numpy.linalg"}), uids);
  EXPECT_EQ(pool.flavour_for("import numpy as np\n"), 1u);
  EXPECT_EQ(pool.flavour_for("import numpyx\n"), 0u);
}

TEST(ZygotePool, BeforeStartNothingIsReadyAndNoProcessExists) {
  boost::asio::io_context io;
  UidPool uids(3000000, 8);
  ZygotePool pool(io.get_executor(), options_with({"numpy", "pandas"}, 2), uids);
  const auto state = pool.describe();
  EXPECT_EQ(state.at("enabled"), true);
  EXPECT_EQ(state.at("ready").to_number<int>(), 0);
  EXPECT_EQ(state.at("busy").to_number<int>(), 0);
  EXPECT_EQ(state.at("restarts").to_number<int>(), 0);
  EXPECT_EQ(
      boost::json::serialize(state.at("flavours")),
      R"([{"name":"minimal","preload":[]},{"name":"numpy+pandas","preload":["numpy","pandas"]}])");
  const auto& zygotes = state.at("zygotes").as_array();
  ASSERT_EQ(zygotes.size(), 4u) << "two per flavour";
  int minimal = 0;
  for (const auto& z : zygotes) {
    const auto& o = z.as_object();
    EXPECT_EQ(o.at("state"), "starting") << boost::json::serialize(o);
    EXPECT_FALSE(o.contains("pid")) << "no process before start(): " << boost::json::serialize(o);
    EXPECT_EQ(o.at("spawned").to_number<int>(), 0);
    minimal += o.at("flavour") == "minimal";
  }
  EXPECT_EQ(minimal, 2);
  // Nothing was scheduled: the io_context has no work, and destruction has nothing to reap.
  EXPECT_EQ(io.poll(), 0u);
}

}  // namespace
}  // namespace pysandbox::executor
