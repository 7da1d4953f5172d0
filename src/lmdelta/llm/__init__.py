"""Assistant-LLM calls (proposer, judge, summariser) behind one client.

`types` holds the records, `providers` the vendor adapters, `client.ChatClient` everything
done once for all of them: cache, budget, per-provider concurrency limit, retry and cost
(see docs/llm.md). Nothing heavy is imported here; import the submodule you need.
"""
