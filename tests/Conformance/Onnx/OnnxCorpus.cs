using System.Globalization;
using System.Text;
using Xunit;
using Xunit.Abstractions;

namespace Lockstep.Conformance.Onnx;

/// <summary>
/// The ONNX peer corpus (../shared/conformance/onnx) on one backend: every case that IBackend can express runs in
/// float32 and must agree with ONNX's expected outputs within ONNX's own tolerance |a − e| ≤ 1e-7 + 1e-3·|e| (MaxPool's
/// indices exactly). Cases that cannot apply (1-D and 3-D pooling) are listed with their reasons by
/// <see cref="Corpus_ListsCasesThatCannotApply"/>, never dropped. Derive with one backend:
/// <code>public sealed class MyOnnxCorpus(ITestOutputHelper output) : OnnxCorpus(new MyBackend(), output);</code>
/// </summary>
public abstract class OnnxCorpus : IDisposable
{
    private const string Missing = "(corpus missing)";

    protected OnnxCorpus(IBackend backend, ITestOutputHelper output)
    {
        Backend = backend ?? throw new ArgumentNullException(nameof(backend));
        Output = output ?? throw new ArgumentNullException(nameof(output));
    }

    protected IBackend Backend { get; }
    protected ITestOutputHelper Output { get; }

    /// <summary>The applicable cases, by folder; a missing corpus gives one row that fails with the reason.</summary>
    public static IEnumerable<object[]> Cases
    {
        get
        {
            string corpus;
            try
            {
                corpus = OnnxCorpusFiles.Locate();
            }
            catch (DirectoryNotFoundException)
            {
                return [[Missing]];
            }
            return OnnxCorpusFiles.CaseFolders(corpus)
                .Where(f => OnnxRunner.WhyNotApplicable(OnnxCase.Load(corpus, f)) is null)
                .Select(f => new object[] { f });
        }
    }

    [Theory, MemberData(nameof(Cases))]
    public void Case_MatchesOnnxExpectation(string folder)
    {
        var c = OnnxCase.Load(OnnxCorpusFiles.Locate(), folder);
        var failures = Failures(c, out var comparisons);
        Assert.True(failures is null, $"{Backend.Name}: ONNX {c}\n  as {OnnxRunner.Describe(c)}\n{failures}");
        Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Backend.Name}: ONNX {folder} passed ({OnnxRunner.Describe(c)}; " +
            $"{string.Join(", ", comparisons.Select(r => $"{r.Output} max |a - e| {r.MaxAbsoluteError:G3}"))})"));
    }

    /// <summary>Prints every case that cannot apply, with its reason, and checks the split against INDEX.md.</summary>
    [Fact]
    public void Corpus_ListsCasesThatCannotApply()
    {
        string corpus = OnnxCorpusFiles.Locate();
        var folders = OnnxCorpusFiles.CaseFolders(corpus);
        var notApplicable = folders.Select(f => OnnxCase.Load(corpus, f))
            .Select(c => (c.Folder, Reason: OnnxRunner.WhyNotApplicable(c))).Where(r => r.Reason is not null).ToList();
        Output.WriteLine($"ONNX corpus {corpus}: {folders.Count} cases, {folders.Count - notApplicable.Count} applicable, {notApplicable.Count} not:");
        foreach (var (folder, reason) in notApplicable) Output.WriteLine($"  not applicable: {folder}: {reason}");
        var extractorSkipped = OnnxCorpusFiles.ExtractorSkipped(corpus);
        Output.WriteLine($"({extractorSkipped.Count} candidates were left out of the corpus by its extractor, see its INDEX.md: " +
                         "MatMul on non-matrices, a uint8 MaxPool, rank-3 Softmax, function-expanded graphs)");

        // INDEX.md implies: conv and pooling apply to rank-4 (2-D spatial) inputs, Gemm/MatMul/Softmax to matrices, Relu always.
        var (headerCount, rows) = OnnxCorpusFiles.Index(corpus);
        Assert.Equal(headerCount, rows.Count);
        Assert.Equal(headerCount, folders.Count);
        int implied = rows.Count(r => r.Op == "Relu" || Rank(r.InputShapes) == (r.Op is "Gemm" or "MatMul" or "Softmax" ? 2 : 4));
        Assert.Equal(implied, folders.Count - notApplicable.Count);

        static int Rank(string shapes)
        {
            string first = shapes[..(shapes.IndexOf(']', StringComparison.Ordinal) + 1)];
            return first == "[]" ? 0 : first.Count(ch => ch == ',') + 1;
        }
    }

    /// <summary>Runs every applicable case and prints how many passed on this backend.</summary>
    [Fact]
    public void Corpus_Summary_EveryApplicableCasePasses()
    {
        string corpus = OnnxCorpusFiles.Locate();
        var cases = OnnxCorpusFiles.CaseFolders(corpus).Select(f => OnnxCase.Load(corpus, f)).ToList();
        var applicable = cases.Where(c => OnnxRunner.WhyNotApplicable(c) is null).ToList();
        var failed = new StringBuilder();
        int passed = 0;
        foreach (var c in applicable)
        {
            string? failure;
            try
            {
                failure = Failures(c, out _);
            }
            catch (ArgumentException e)
            {
                failure = "  rejected: " + e.Message;
            }
            if (failure is null) passed++;
            else failed.AppendLine(CultureInfo.InvariantCulture, $"{c.Folder}:\n{failure}");
        }
        string summary = $"ONNX corpus on {Backend.Description}: {passed} of {applicable.Count} applicable cases passed " +
                         $"({cases.Count - applicable.Count} of {cases.Count} not applicable, listed by Corpus_ListsCasesThatCannotApply)";
        Output.WriteLine(summary);
        Assert.True(passed == applicable.Count, $"{summary}\n{failed}");
    }

    private string? Failures(OnnxCase c, out IReadOnlyList<OnnxComparison> comparisons)
    {
        comparisons = OnnxRunner.Run(Backend, c);
        var failures = comparisons.Select(r => r.Failure()).Where(f => f is not null).ToList();
        return failures.Count == 0 ? null : "  " + string.Join("\n  ", failures);
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing) Backend.Dispose();
    }
}
