// The Open Inference Protocol body reader: what it keeps, that it rejects
// every malformed document nlohmann::json rejects (and nothing it accepts),
// and that numbers come out as strtod reads them. fuzz/oip_fuzz.cc checks
// the same differentially on arbitrary bytes.
#include "eraser/serve/tensor_request.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "testing/comma_locale.h"

namespace eraser::serve {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(TensorRequest, ReadsTheFieldsTheRouteUses) {
  TensorRequest req;
  std::string error;
  ASSERT_TRUE(ParseTensorRequest(
      "\xEF\xBB\xBF { \"id\" : \"r\\u00e9\\ud83d\\ude00\\n\", \"extra\": "
      "{\"a\": [true, false, null, {\"b\": \"\\\"\"}]},\r\n"
      "\"inputs\": [{\"name\": \"in\\\"put\", \"datatype\": \"UINT8\","
      "\"shape\": [1, 2, 2], \"data\": [[[0, 255]], [[1.5e1, -2E-1]]],"
      "\"more\": {}}],\t\"outputs\": [{\"name\": \"label\"}, "
      "{\"name\": \"class\"}]}",
      &req, &error))
      << error;
  EXPECT_EQ(req.id, "r\u00e9\U0001F600\n");
  EXPECT_EQ(req.inputs, 1);
  EXPECT_EQ(req.name, "in\"put");
  EXPECT_EQ(req.datatype, "UINT8");
  EXPECT_THAT(req.shape, ElementsAre(1, 2, 2));
  EXPECT_THAT(req.data, ElementsAre(0, 255, 15, -0.2));
  EXPECT_TRUE(req.has_outputs);
  EXPECT_THAT(req.outputs, ElementsAre("label", "class"));
}

TEST(TensorRequest, OnlyTheFirstInputIsReadAndEveryOneCounted) {
  TensorRequest req;
  std::string error;
  ASSERT_TRUE(ParseTensorRequest(
      R"({"inputs": [{"name": "a", "data": [1]}, {"name": "b", "data": [2]}]})",
      &req, &error));
  EXPECT_EQ(req.inputs, 2);
  EXPECT_EQ(req.name, "a");
  EXPECT_THAT(req.data, ElementsAre(1));
  EXPECT_FALSE(req.has_outputs);
  EXPECT_FALSE(req.id.has_value());
}

TEST(TensorRequest, NumbersAreReadAsStrtodReadsThem) {
  const std::vector<std::string> numbers = {"0",
                                            "-0",
                                            "0.1",
                                            "0.30000000000000004",
                                            "1e-320",
                                            "4.9e-324",
                                            "2e-324",
                                            "1.7976931348623157e308",
                                            "123456789012345678901234567890",
                                            "9007199254740993",
                                            "0.0039",
                                            "-12.5E+3",
                                            "3.4028235677973366e38"};
  std::string body = R"({"inputs":[{"data":[)";
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    body += (i ? "," : "") + numbers[i];
  }
  body += "]}]}";
  TensorRequest req;
  std::string error;
  ASSERT_TRUE(ParseTensorRequest(body, &req, &error)) << error;
  ASSERT_EQ(req.data.size(), numbers.size());
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    EXPECT_EQ(req.data[i], std::strtod(numbers[i].c_str(), nullptr))
        << numbers[i];
  }
  // And on random decimal spellings, against strtod and nlohmann.
  std::mt19937_64 rng(7);
  std::string many = R"({"inputs":[{"data":[)";
  std::vector<std::string> spelled;
  for (int i = 0; i < 20000; ++i) {
    std::string s = (rng() & 1) ? "-" : "";
    s += std::to_string(rng() % 100000);
    if (rng() & 1) s += "." + std::to_string(rng() % 1000000000);
    if (rng() % 4 == 0)
      s += "e" + std::to_string(static_cast<int>(rng() % 80) - 40);
    spelled.push_back(s);
    many += (i ? "," : "") + s;
  }
  many += "]}]}";
  ASSERT_TRUE(ParseTensorRequest(many, &req, &error)) << error;
  const json tree = json::parse(many);
  ASSERT_EQ(req.data.size(), spelled.size());
  for (std::size_t i = 0; i < spelled.size(); ++i) {
    ASSERT_EQ(req.data[i], std::strtod(spelled[i].c_str(), nullptr))
        << spelled[i];
    ASSERT_EQ(req.data[i], tree["inputs"][0]["data"][i].get<double>())
        << spelled[i];
  }
}

// Under a host program's German locale too: strtod there stops at the
// point, and read the underflowing 1.5e-400 as 1.5.
TEST(TensorRequest, NumbersIgnoreTheCLocale) {
  const std::vector<std::string> numbers = {"1.5e-400", "-2.5e-330", "2.5e-320",
                                            "0.25", "1e-400"};
  std::vector<double> in_c;
  std::string body = R"({"inputs":[{"data":[)";
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    body += (i ? "," : "") + numbers[i];
    in_c.push_back(std::strtod(numbers[i].c_str(), nullptr));
  }
  body += "]}]}";
  testing::CommaDecimalLocale german;
  ASSERT_TRUE(german.active());
  TensorRequest req;
  std::string error;
  ASSERT_TRUE(ParseTensorRequest(body, &req, &error)) << error;
  EXPECT_EQ(req.data, in_c);
  EXPECT_EQ(req.data[0], 0.0);
}

TEST(TensorRequest, RejectsWhatIsNotJsonAsNlohmannDoes) {
  const std::vector<std::string> bad = {
      "",
      "   ",
      "{",
      "{\"inputs\": [{\"data\": [1, 2]}]",
      "{\"a\":}",
      "{\"a\" 1}",
      "{\"a\": 1,}",
      "{,}",
      "{'a': 1}",
      "{a: 1}",
      "{\"a\": [1,]}",
      "{\"a\": [1 2]}",
      "{\"a\": 01}",
      "{\"a\": 1.}",
      "{\"a\": .5}",
      "{\"a\": +1}",
      "{\"a\": 1e}",
      "{\"a\": 1e+}",
      "{\"a\": -}",
      "{\"a\": NaN}",
      "{\"a\": Infinity}",
      "{\"a\": tru}",
      "{\"a\": nul}",
      "{\"a\": \"\\x\"}",
      "{\"a\": \"\\u12\"}",
      "{\"a\": \"\\ud800\"}",
      "{\"a\": \"\\udc00\"}",
      "{\"a\": \"\\ud800\\u0041\"}",
      "{\"a\": \"tab\there\"}",
      "{\"a\": \"\xC0\xAF\"}",
      "{\"a\": \"\xED\xA0\x80\"}",
      "{\"a\": \"\xF4\x90\x80\x80\"}",
      "{\"a\": \"\xE2\x82\"}",
      "{\"a\": \"unterminated}",
      "{} x",
      "{}{}",
      "\xEF\xBB{}",
      "{\"inputs\": [{\"data\": [1, 2, 3 4]}]}",
      "{\"inputs\": [{\"data\": [1e5.]}]}",
  };
  for (const std::string& body : bad) {
    SCOPED_TRACE(body);
    ASSERT_FALSE(json::accept(body));  // the cases are themselves right
    TensorRequest req;
    std::string error;
    EXPECT_FALSE(ParseTensorRequest(body, &req, &error));
    EXPECT_THAT(error, HasSubstr("the body is not valid JSON (at byte "));
  }
}

TEST(TensorRequest, NamesTheFieldOfAValidDocumentOfTheWrongShape) {
  std::string deep_data = "1";
  for (int i = 0; i < 10; ++i) deep_data = "[" + deep_data + "]";
  std::string deep = "0";
  for (int i = 0; i < 100; ++i) deep = "[" + deep + "]";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[]", "must be a JSON object"},
      {"7", "must be a JSON object"},
      {"\"x\"", "must be a JSON object"},
      {R"({"inputs": [1]})", "\"inputs\" must hold tensors"},
      {R"({"inputs": ["x"]})", "\"inputs\" must hold tensors"},
      {R"({"inputs": [[]]})", "\"inputs\" must hold tensors"},
      {R"({"inputs": [{"data": [1, "x"]}]})",
       "\"data\" must hold only numbers"},
      {R"({"inputs": [{"data": [null]}]})", "\"data\" must hold only numbers"},
      {R"({"inputs": [{"data": [{}]}]})", "\"data\" must hold only numbers"},
      {R"({"inputs": [{"shape": [1.5]}]})", "non-negative integers"},
      {R"({"inputs": [{"shape": [-1]}]})", "non-negative integers"},
      {R"({"inputs": [{"shape": [[1]]}]})", "\"shape\" must hold integers"},
      {R"({"inputs": [{"shape": [true]}]})", "\"shape\" must hold integers"},
      // As the general parser reads them: not unsigned integers.
      {R"({"inputs": [{"shape": [1.0]}]})", "non-negative integers"},
      {R"({"inputs": [{"shape": [6e0]}]})", "non-negative integers"},
      {R"({"inputs": [{"shape": [-0]}]})", "non-negative integers"},
      {R"({"outputs": {}})", "\"outputs\" must be an array"},
      {R"({"outputs": null})", "\"outputs\" must be an array"},
      {R"({"outputs": [7]})", "must be an object with a string \"name\""},
      {R"({"outputs": [[]]})", "must be an object with a string \"name\""},
      {R"({"outputs": [{}]})", "must be an object with a string \"name\""},
      {R"({"outputs": [{"x": 1}]})",
       "must be an object with a string \"name\""},
      {R"({"outputs": [{"name": 7}]})",
       "must be an object with a string \"name\""},
      {R"({"inputs": [{"data": )" + deep_data + "}]}", "nested too deeply"},
      {R"({"x": )" + deep + "}", "nested deeper than 64 levels"},
      {R"({"inputs": [{"data": [1, 1e400]}]})",
       "at byte 25 is beyond the double range"},
      {R"({"x": -1.8e308})", "beyond the double range"},
      {std::string("{}\0", 3), "not valid JSON (at byte 2)"},
  };
  for (const auto& [body, message] : cases) {
    SCOPED_TRACE(body);
    TensorRequest req;
    std::string error;
    EXPECT_FALSE(ParseTensorRequest(body, &req, &error));
    EXPECT_THAT(error, HasSubstr(message));
  }
  // The first problem in document order wins: here the string in "data",
  // not the syntax error after it.
  TensorRequest req;
  std::string error;
  EXPECT_FALSE(
      ParseTensorRequest(R"({"inputs": [{"data": ["x", }]})", &req, &error));
  EXPECT_THAT(error, HasSubstr("only numbers"));
  // A field it reads of the wrong type is refused, and left to the
  // general parser to judge (reread). An id that is not a string is
  // refused (it would be dropped from the answer without a word); a null
  // one is none.
  EXPECT_FALSE(ParseTensorRequest(
      R"({"id": null, "inputs": [{"name": 3, "data": [2, 3]}]})", &req,
      &error));
  EXPECT_TRUE(req.reread);
  EXPECT_THAT(error, HasSubstr("\"name\" must be a string"));
  ASSERT_TRUE(ParseTensorRequest(
      R"({"id": null, "inputs": [{"name": "x", "data": [2, 3]}]})", &req,
      &error));
  EXPECT_FALSE(req.id.has_value());
  EXPECT_FALSE(req.reread);
  EXPECT_THAT(req.data, ElementsAre(2, 3));
  EXPECT_FALSE(ParseTensorRequest(R"({"id": 5, "inputs": []})", &req, &error));
  EXPECT_THAT(error, HasSubstr("\"id\" must be a string"));
}

// A field the reader reads, repeated in its object, is left to the general
// parser (where the last one counts); an unknown one repeated is not.
TEST(TensorRequest, ARepeatedFieldItReadsGoesToTheGeneralParser) {
  for (const char* body :
       {R"({"inputs": [], "inputs": []})", R"({"id": "a", "id": "b"})",
        R"({"outputs": [], "outputs": []})",
        R"({"inputs": [{"data": [1], "data": [2]}]})",
        R"({"inputs": [{"shape": [1], "name": "x", "shape": [2]}]})",
        R"({"outputs": [{"name": "a", "name": "b"}]})",
        // "parameters" written with an escape (the route sends the plain
        // spelling to the general parser without asking this reader).
        R"({"param\u0065ters": {"timeout": 0}})"}) {
    SCOPED_TRACE(body);
    TensorRequest req;
    std::string error;
    EXPECT_FALSE(ParseTensorRequest(body, &req, &error));
    EXPECT_TRUE(req.reread);
    EXPECT_THAT(error, ::testing::AnyOf(HasSubstr("repeats"),
                                        HasSubstr("general parser")));
  }
  TensorRequest req;
  std::string error;
  ASSERT_TRUE(ParseTensorRequest(
      R"({"x": 1, "x": 2, "inputs": [{"y": 1, "y": 2, "data": [1]},)"
      R"( {"data": [1], "data": [2]}]})",
      &req, &error))
      << error;
  EXPECT_FALSE(req.reread);
  EXPECT_EQ(req.inputs, 2);
}

}  // namespace
}  // namespace eraser::serve
