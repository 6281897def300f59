// The stored records of a data directory's dataset (DatasetInfo minus the
// test split and owners, which are stored apart) and of its model's cost:
// JSON objects.
#ifndef ERASER_UNLEARNING_SRC_DATASET_INFO_H_
#define ERASER_UNLEARNING_SRC_DATASET_INFO_H_

#include <string>
#include <vector>

#include "eraser/datasets/encoding.h"
#include "eraser/unlearning/sisa.h"

namespace eraser::unlearning {

std::string EncodeDatasetInfo(const std::string& source, uint32_t classes,
                              const std::vector<std::string>& class_names,
                              const datasets::TabularEncoding* encoding,
                              uint64_t train_size);
// Fills source, classes, class_names, encoding and train_size. kDataLoss
// for a malformed record.
Status DecodeDatasetInfo(const std::string& json, DatasetInfo* info);

std::string EncodeModelCost(const ModelCost& cost);
// kDataLoss for a malformed record or a negative or non-finite figure.
StatusOr<ModelCost> DecodeModelCost(const std::string& json);

}  // namespace eraser::unlearning

#endif  // ERASER_UNLEARNING_SRC_DATASET_INFO_H_
