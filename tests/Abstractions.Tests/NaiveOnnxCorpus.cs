using Lockstep.Conformance.Onnx;
using Lockstep.Conformance.Reference;
using Xunit.Abstractions;

namespace Lockstep.Tests;

/// <summary>The ONNX peer corpus on the naive loop oracle.</summary>
public sealed class NaiveOnnxCorpus(ITestOutputHelper output) : OnnxCorpus(new NaiveBackend(), output);
