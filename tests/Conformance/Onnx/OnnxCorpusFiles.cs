using System.Text.Json;

namespace Lockstep.Conformance.Onnx;

/// <summary>Finds the ONNX corpus next to the repository and reads its manifest.json and INDEX.md.</summary>
public static class OnnxCorpusFiles
{
    /// <summary>Where the corpus lies relative to the folder that holds Backends.sln.</summary>
    public const string RelativePath = "../shared/conformance/onnx";

    /// <summary>
    /// The corpus folder: walk up from the test assembly to the folder holding Backends.sln, then ../shared/conformance/onnx.
    /// Missing is an error, in CI and everywhere else: the corpus is part of the repository's environment.
    /// LOCKSTEP_ONNX_CORPUS names the folder instead, where tests run outside a checkout (eng/gpu-check.sh).
    /// </summary>
    public static string Locate()
    {
        if (Environment.GetEnvironmentVariable("LOCKSTEP_ONNX_CORPUS") is { Length: > 0 } given)
        {
            return File.Exists(Path.Combine(given, "manifest.json"))
                ? Path.GetFullPath(given)
                : throw new DirectoryNotFoundException($"ONNX corpus missing: LOCKSTEP_ONNX_CORPUS={given} has no manifest.json");
        }
        string start = AppContext.BaseDirectory;
        var dir = new DirectoryInfo(start);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Backends.sln"))) dir = dir.Parent;
        string ci = Environment.GetEnvironmentVariable("CI") is { Length: > 0 } value ? $" (CI={value})" : "";
        if (dir is null)
        {
            throw new DirectoryNotFoundException(
                $"ONNX corpus: no folder holding Backends.sln above the test assembly {start}, so {RelativePath} cannot be found{ci}");
        }
        string corpus = Path.GetFullPath(Path.Combine(dir.FullName, RelativePath));
        if (!File.Exists(Path.Combine(corpus, "manifest.json")))
        {
            throw new DirectoryNotFoundException(
                $"ONNX corpus missing{ci}: expected {corpus}/manifest.json ({RelativePath} from the repository root {dir.FullName}). " +
                "The peer corpus is part of the repository's environment (DESIGN.md, Conformance); a checkout must sit next to " +
                "../shared, as git worktrees under /work do");
        }
        return corpus;
    }

    /// <summary>The case folders of manifest.json's cases[], in its order.</summary>
    public static IReadOnlyList<string> CaseFolders(string corpus)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(corpus, "manifest.json")));
        return json.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("folder").GetString()!).ToList();
    }

    /// <summary>The candidates the corpus's extractor left out (manifest.json's skipped[]), with its reasons.</summary>
    public static IReadOnlyList<(string Name, string Reason)> ExtractorSkipped(string corpus)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(corpus, "manifest.json")));
        return json.RootElement.GetProperty("skipped").EnumerateArray()
            .Select(c => (c.GetProperty("name").GetString()!, c.GetProperty("reason").GetString()!)).ToList();
    }

    /// <summary>INDEX.md's case table: (folder, op, input shapes as written), and the case count in its header.</summary>
    public static (int HeaderCount, IReadOnlyList<(string Folder, string Op, string InputShapes)> Rows) Index(string corpus)
    {
        var lines = File.ReadAllLines(Path.Combine(corpus, "INDEX.md"));
        var header = lines.Select(l => System.Text.RegularExpressions.Regex.Match(l, @"(\d+) cases, \d+ skipped")).First(m => m.Success);
        var rows = lines
            .TakeWhile(l => !l.StartsWith("## Skipped", StringComparison.Ordinal))
            .Where(l => l.StartsWith("| test_", StringComparison.Ordinal))
            .Select(l => l.Split('|', StringSplitOptions.TrimEntries))
            .Select(c => (c[1], c[2], c[4]))
            .ToList();
        return (int.Parse(header.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), rows);
    }
}
